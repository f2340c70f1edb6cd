"""`TrainConfig`: every setting of a fine-tuning run in one small, checked dataclass.

Derived in notebook 11. The field names are the ones a person types everywhere: notebook
parameters, ``python -m bertlab finetune`` flags (``--max-length`` or ``--max_length``) and
this dataclass. `validate` checks every value and raises one clear sentence for a bad one.

`model`, `dataset` and `implementation` say what `bertlab.train.setup` loads; `fit` itself
trains whatever model it is handed and keeps these names for the record (metrics files,
checkpoints) and for the checks a resumed run makes (`changes_that_alter_the_run`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from bertlab import params
from bertlab.env import DEVICES
from bertlab.errors import ParameterError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
IMPLEMENTATIONS = ("bertlab", "transformers")  # which classifier class `setup` builds
ATTENTION = ("sdpa", "eager", "varlen")  # the attention kernels of the course's BERT (bertlab.attention)
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")  # torch.compile's modes
# Settings that change where the run's files go or how often it is looked at, never the
# weights it trains: a resumed run may change these and nothing else.
FREE_ON_RESUME = ("output_dir", "resume", "overwrite", "eval_every", "max_eval_examples", "device", "time_budget_s",
                  "compile_mode")

# One line of help per field: `python -m bertlab finetune --help` prints these.
HELP = {
    "model": 'model name: "minilm" (bundled), a local model folder, or a Hugging Face name',
    "implementation": "which classifier: bertlab (the from-scratch BERT of notebook 08) or transformers",
    "attn_implementation": "attention kernel: sdpa, eager, or varlen (packed batches on CUDA, no T x T mask; "
                           "elsewhere sdpa with the block mask, said once)",
    "dataset": 'data source: "reviews" (bundled), a local folder or file, or "hf:nyu-mll/glue:sst2"',
    "max_length": "longest sequence in tokens; longer texts are truncated",
    "batch_size": "examples per micro-batch on each process",
    "lr": "peak learning rate of AdamW (2e-5 to 5e-5 for full BERT fine-tuning)",
    "num_epochs": "passes over the training data",
    "warmup_ratio": "fraction of the optimizer steps spent warming the learning rate up from 0",
    "weight_decay": "AdamW weight decay (never applied to biases and LayerNorm weights)",
    "grad_accum": "micro-batches accumulated per optimizer step",
    "max_grad_norm": "clip the global gradient norm to this (0 = no clipping)",
    "precision": "auto (bf16 where supported, else fp16 with a grad scaler on CUDA), fp32, bf16, fp16",
    "bucketing": "group examples of similar length into batches (less padding)",
    "bucket_pool": "batches sorted by length together when bucketing: more pads less, but fills a batch with one kind of sentence",
    "packing": "padding-free batches: each step's sentences laid end to end in rows of max_length tokens (implementation bertlab only)",
    "compile": "wrap the model in torch.compile",
    "compile_mode": ("torch.compile's mode with compile: default, reduce-overhead (CUDA graphs: with packing, one "
                     "static graph per run) or max-autotune"),
    "eval_every": "evaluate (and checkpoint) every N optimizer steps; 0 = at the end of each epoch",
    "output_dir": 'folder for checkpoints: last/ (resumable) and best/ ("" = none)',
    "resume": "continue from output_dir/last when it exists",
    "overwrite": ("start again in an output_dir that holds an earlier run (its last/ and best/ are deleted); "
                  "the finetune command also replaces a --metrics-path file that no run wrote"),
    "seed": "seed for the weights of the new head, dropout and the batch order",
    "device": "auto, cpu, cuda or mps",
    "max_train_examples": "use only the first N training examples (0 = all)",
    "max_eval_examples": "evaluate on only the first N examples of each split (0 = all)",
    "max_steps": "stop after N optimizer steps (0 = num_epochs full passes)",
    "time_budget_s": "seconds the whole run may take, evaluations included: fit plans its steps to end in time (0 = no limit)",
}


@dataclass
class TrainConfig:
    """Settings of one fine-tuning run (see `HELP` for each field)."""

    model: str = "minilm"
    implementation: str = "bertlab"
    attn_implementation: str = "sdpa"
    dataset: str = "reviews"
    max_length: int = 128
    batch_size: int = 32
    lr: float = 5e-5
    num_epochs: int = 3
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    grad_accum: int = 1
    max_grad_norm: float = 1.0
    precision: str = "auto"
    bucketing: bool = True
    bucket_pool: int = 4
    packing: bool = False
    compile: bool = False
    compile_mode: str = "default"
    eval_every: int = 0
    output_dir: str = ""
    resume: bool = False
    overwrite: bool = False
    seed: int = 0
    device: str = "auto"
    max_train_examples: int = 0
    max_eval_examples: int = 0
    max_steps: int = 0
    time_budget_s: float = 0.0

    def validate(self) -> TrainConfig:
        """Check every field; raise `ParameterError` with one sentence for a bad value."""
        params.text("model", self.model, allow_empty=False)
        params.choice("implementation", self.implementation, IMPLEMENTATIONS)
        params.choice("attn_implementation", self.attn_implementation, ATTENTION)
        if self.attn_implementation == "varlen" and self.implementation != "bertlab":
            raise ParameterError("attn_implementation='varlen' needs implementation='bertlab': transformers' classifiers "
                                 "have no packed path for sentence classification; use sdpa, or the course's own BERT.")
        params.text("dataset", self.dataset, allow_empty=False)
        params.integer("max_length", self.max_length, minimum=8, maximum=8192)
        params.integer("batch_size", self.batch_size, minimum=1)
        params.number("lr", self.lr, positive=True, maximum=1.0)
        params.integer("num_epochs", self.num_epochs, minimum=1)
        params.number("warmup_ratio", self.warmup_ratio, minimum=0.0, maximum=1.0)
        params.number("weight_decay", self.weight_decay, minimum=0.0)
        params.integer("grad_accum", self.grad_accum, minimum=1)
        params.number("max_grad_norm", self.max_grad_norm, minimum=0.0)
        params.choice("precision", self.precision, PRECISIONS)
        for name in ("bucketing", "packing", "compile", "resume", "overwrite"):
            params.choice(name, getattr(self, name), (True, False))
        params.choice("compile_mode", self.compile_mode, COMPILE_MODES)
        if self.compile_mode != "default" and not self.compile:
            raise ParameterError(f"compile_mode={self.compile_mode!r} applies only when compiling; set compile=True too, "
                                 "or leave compile_mode at 'default'.")
        params.integer("bucket_pool", self.bucket_pool, minimum=1)
        if self.packing and self.implementation != "bertlab":
            raise ParameterError("packing=True needs implementation='bertlab': transformers' classifiers have no "
                                 "padding-free path for sentence classification; use the course's own BERT or packing=False.")
        params.integer("eval_every", self.eval_every, minimum=0)
        params.text("output_dir", self.output_dir)
        if self.resume and not self.output_dir:
            raise ParameterError("Parameter resume needs an output_dir to resume from; set output_dir or resume=False.")
        if self.resume and self.overwrite:
            raise ParameterError("resume continues the run in output_dir and overwrite deletes it; choose one.")
        params.integer("seed", self.seed, minimum=0)
        params.choice("device", self.device, DEVICES)
        params.integer("max_train_examples", self.max_train_examples, minimum=0)
        params.integer("max_eval_examples", self.max_eval_examples, minimum=0)
        params.integer("max_steps", self.max_steps, minimum=0)
        params.number("time_budget_s", self.time_budget_s, minimum=0.0)
        return self

    def to_dict(self) -> dict[str, Any]:
        """The settings as a plain dict (for checkpoints and metrics files)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build a config from a dict, rejecting unknown names with the list of known ones."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ParameterError(f"There is no setting {unknown[0]!r}; the settings are: {', '.join(sorted(known))}.")
        return cls(**values).validate()

    def changes_that_alter_the_run(self, saved: dict[str, Any]) -> list[str]:
        """"name: old -> new" for each setting that differs from `saved` (a checkpoint's
        config) and would change the weights trained; the `FREE_ON_RESUME` ones may differ.

        A setting `saved` lacks (a checkpoint from before it existed) counts as its default.
        """
        now, defaults = self.to_dict(), TrainConfig().to_dict()
        return [f"{name}: {saved.get(name, defaults[name])!r} -> {value!r}" for name, value in now.items()
                if name not in FREE_ON_RESUME and saved.get(name, defaults[name]) != value]
