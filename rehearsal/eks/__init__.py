"""A local stand-in for the Amazon EKS API: clusters, the add-on catalogue and add-on updates."""

from rehearsal.eks.simulator import Clock, CustomerEdit, EksApiError, EksSimulator

__all__ = ["Clock", "CustomerEdit", "EksApiError", "EksSimulator"]
