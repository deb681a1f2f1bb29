"""Infrastructure of the MLOps template: one component per environment, one shared stack."""
