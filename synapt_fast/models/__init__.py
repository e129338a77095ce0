"""The model zoo: TSN, I3D, R(2+1)D and TimeSformer as SynAPT trained them, with weight import.

    from synapt_fast.models import create_model, list_models
    model = create_model("i3d_r50", num_classes=87)      # model.input_layout == "NCTHW"
    clips = torch.randn(model.input_shape(batch_size=2))
    load_checkpoint(model, "model_best.pth.tar")         # IBM/SynAPT checkpoint, class count adapted
    prepare_transfer(model, "linear_probe", num_classes=101)

Tiny variants (`*_tiny*`: one block per stage or two transformer blocks, 4 frames at 32²) run the
same code in milliseconds on a CPU: `create_model("i3d_tiny", num_classes=10)`.
"""

from synapt_fast.models.registry import create_model, list_models, register_model
# Importing the families runs their @register_model decorators.
from synapt_fast.models import resnet3d, timesformer, tsn  # noqa: E402,F401
from synapt_fast.models.transfer import (TRANSFER_MODES, extract_features, load_features, prepare_transfer,
                                         save_features, trainable_parameters)
from synapt_fast.models.weights import (CheckpointError, CheckpointMismatch, LoadReport, load_checkpoint,
                                        load_imagenet)

__all__ = [
    "TRANSFER_MODES", "CheckpointError", "CheckpointMismatch", "LoadReport", "create_model", "extract_features", "list_models",
    "load_checkpoint", "load_features", "load_imagenet", "prepare_transfer", "register_model",
    "save_features", "trainable_parameters",
]
