"""Fast fine-tuning of BERT-family classifiers, derived in notebook 11.

    from bertlab.train import TrainConfig, fit, evaluate
    result = fit(TrainConfig(model="minilm", dataset="reviews", num_epochs=3))
    result.model, result.tokenizer, result.history, result.metrics

One idea per module: `config` (the settings), `batching` (length bucketing, dynamic
padding), `loop` (`fit`, `evaluate`, the OOM fallback), `checkpoint` (atomic save and
resume), `throughput` (samples/s, tokens/s, FLOPs, MFU, memory), `naive` (the tutorial
loop used as the baseline) and `cli` (``python -m bertlab finetune``, also under torchrun).
"""

from bertlab.train.config import TrainConfig
from bertlab.train.loop import FitResult, Hooks, TrainState, evaluate, fit

__all__ = ["TrainConfig", "fit", "evaluate", "FitResult", "Hooks", "TrainState"]
