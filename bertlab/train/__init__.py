"""Fast fine-tuning of BERT-family classifiers, derived in notebook 11.

    from bertlab.train import TrainConfig, fit, setup, evaluate
    cfg = TrainConfig(model="minilm", dataset="reviews", num_epochs=3)
    model, tokenizer, data = setup(cfg)  # the from-scratch classifier (implementation="bertlab")
    result = fit(model, tokenizer, data, cfg)
    result.model, result.history, result.metrics

`fit` trains whatever classifier it is handed; `setup` does the loading. One idea per
module: `config` (the settings), `setup` (loading, the process's device), `batching`
(length bucketing, dynamic padding), `optimizer` (AdamW's groups), `step` (one optimizer
step: schedule, accumulation, clipping, a stop on a nan loss), `loop` (`fit`, the OOM
fallback), `budget` (a time budget that `fit` plans its steps by and keeps), `evaluation`
(`evaluate`, the final metrics), `checkpoint` (atomic, checked save and resume, Ctrl-C and
SIGTERM),
`precision` (bf16, fp16, TF32), `throughput` (samples/s, tokens/s, FLOPs, MFU, memory),
`naive` (the tutorial loop used as the baseline) and `cli` (``python -m bertlab
finetune``, also under torchrun).
"""

from bertlab.train.config import TrainConfig
from bertlab.train.evaluation import evaluate
from bertlab.train.loop import FitResult, Hooks, TrainState, fit
from bertlab.train.setup import setup

__all__ = ["TrainConfig", "fit", "setup", "evaluate", "FitResult", "Hooks", "TrainState"]
