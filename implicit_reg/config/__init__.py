"""What a run's config may be, all of it checked before any run folder exists: the typed schema
(``schema``), the value checks (``validate``), the limits of the machine (``limits``), the Hydra
callback that applies them (``precheck``) and the device, dtype and threads (``device``)."""
