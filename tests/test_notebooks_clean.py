"""`notebooks.clean`: what refresh strips before a notebook is committed."""

import json

import nbformat
from nbformat.v4 import new_code_cell, new_notebook, new_output

from bertlab.classroom import notebooks


def _state(model_id):
    def model(name, **state):
        return {"model_name": name, "model_module": "@jupyter-widgets/controls", "state": state}

    return {
        model_id: model("HBoxModel", children=["IPY_MODEL_a", "IPY_MODEL_b", "IPY_MODEL_c"]),
        "a": model("HTMLModel", value="epochs:\u2007100%"),
        "b": model("FloatProgressModel", value=3.0, max=3.0),
        "c": model("HTMLModel", value="\u20073/3\u2007[00:01&lt;00:00]"),
    }


def test_clean_strips_metadata_and_keeps_the_final_progress_text(tmp_path):
    out = new_output("display_data", data={
        "application/vnd.jupyter.widget-view+json": {"model_id": "box", "version_major": 2, "version_minor": 0},
        "text/plain": "epochs:   0%|          | 0/3 [00:00<?, ?it/s]",
    })
    cell = new_code_cell("for _ in tqdm(range(3)): pass", outputs=[out])
    cell.metadata["papermill"] = {"duration": 1.0}
    cell.metadata["execution"] = {"iopub.status.busy": "2026-11-22"}
    nb = new_notebook(cells=[cell], metadata={
        "papermill": {"parameters": {}},
        "widgets": {"application/vnd.jupyter.widget-state+json": {"state": _state("box"), "version_major": 2}},
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
    })
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, str(path))
    notebooks.clean(path)
    cleaned = json.loads(path.read_text())
    assert "papermill" not in cleaned["metadata"] and "widgets" not in cleaned["metadata"]
    first = cleaned["cells"][0]
    assert "papermill" not in first["metadata"] and "execution" not in first["metadata"]
    data = first["outputs"][0]["data"]
    assert "application/vnd.jupyter.widget-view+json" not in data
    assert "".join(data["text/plain"]) == "epochs: 100%|██████████| 3/3 [00:01<00:00]"
