"""avbias-workbench: MMMS-BA audio-visual deepfake detection under class imbalance."""
from workbench.core.config import Config

__all__ = ["Config"]
__version__ = "0.1.0"
