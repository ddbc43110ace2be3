"""What a run shows in TensorBoard's HParams tab: its problem's own keys and its final metrics."""

from implicit_reg.record import hparams


def test_each_problem_reports_its_own_size_keys(compose_cfg):
    sensing = hparams.of(compose_cfg("problem=matrix_sensing", "problem.measurements=40"), "x")
    completion = hparams.of(compose_cfg("problem=matrix_completion"), "converged")
    assert sensing["problem.measurements"] == 40 and "problem.observed" not in sensing
    assert completion["problem.observed"] == 50 and "problem.measurements" not in completion
    assert completion["status"] == "converged"


def test_reconstruction_error_is_an_hparams_metric():
    class Writer:
        def __init__(self) -> None:
            self.summaries: list = []
            self.file_writer = self

        def add_summary(self, summary) -> None:
            self.summaries.append(summary)

    writer = Writer()
    metrics = {"error/reconstruction": 0.25, "loss/train": 1e-3, "status": "converged"}
    hparams.record(writer, {"seed": 0}, metrics)
    text = b"".join(s.SerializeToString() for s in writer.summaries)
    assert b"error/reconstruction" in text and b"loss/train" in text
