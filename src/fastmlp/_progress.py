"""Verbose output of fit: one line per epoch, and a progress line on a terminal."""
import sys


class EpochReporter:
    """Prints one line per epoch: loss, the range of the layers' gradient norms, seconds, samples/s.

    On a terminal, a progress line below the epoch lines (epochs done, time
    left) is rewritten in place after every epoch; elsewhere (a file, a pipe,
    a notebook's captured output) only the plain lines are written.

    Parameters
    ----------
    total : int
        Epochs (or iterations) planned.
    label : str
        How a line starts: "epoch" for Network.fit, "Iteration" for the estimators
        (scikit-learn's wording).
    stream : file-like, default=sys.stdout at the time of the call
    """

    def __init__(self, total, label="epoch", stream=None):
        self.total = total
        self.label = label
        self.stream = stream if stream is not None else sys.stdout
        isatty = getattr(self.stream, "isatty", None)
        self.tty = bool(isatty and isatty())
        self.elapsed = 0.0

    def epoch(self, k, loss, grad_norms, seconds, n_samples):
        self.elapsed += seconds
        norms = list(grad_norms)
        norm_range = f"  |dW| {min(norms):.2e}..{max(norms):.2e}" if norms else ""
        line = (f"{self.label} {k}/{self.total}, loss = {loss:.8f}{norm_range}  {seconds:.3f} s  "
                f"{n_samples / max(seconds, 1e-12):,.0f} samples/s")
        if self.tty:
            width = 30
            done = int(width * k / self.total)
            left = self.elapsed / k * (self.total - k)
            bar = f"[{'#' * done}{'.' * (width - done)}] {k}/{self.total}  about {left:.0f} s left"
            self.stream.write("\r\033[K" + line + "\n" + bar)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self):
        """Clears the progress line (terminal only)."""
        if self.tty:
            self.stream.write("\r\033[K")
            self.stream.flush()
