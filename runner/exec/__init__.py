"""Running a plan: the engine, its policies, the operator who answers."""
