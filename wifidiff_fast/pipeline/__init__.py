"""The three blocks (boost, generation with midpoint reuse, election) and the Estimator."""
