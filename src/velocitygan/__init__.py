"""velocitygan: data-driven seismic full-waveform inversion (VelocityGAN, InversionNet)."""

__version__ = "0.1.0"
__all__ = ["__version__"]
