"""What a run leaves behind and how it is read back: TensorBoard (``logger``, ``hparams``,
``schedule``), the run folder and its files, each written atomically (``run_folder``, ``rundir``,
``artifacts``, ``outputs``, ``checkpoint``, ``history``), what the terminal shows (``progress``,
``run_summary``), and the readers of finished runs (``runs``, ``events``)."""
