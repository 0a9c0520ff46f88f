"""What the checks reason with, apart from the checks: the capacity model (exact Decimal
arithmetic), the RBAC authorizer, KubeRay's own rules (desired workers, the pods and Service it
makes of a RayCluster) and the Ray cluster's footprint on the nodes."""
