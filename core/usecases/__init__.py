"""Use cases that compose the domain packages (training, retraining, the promotion gate, alert
actions, alias moves that touch deployments). Domain packages below import downward only;
adapters (app/, pages/) call these or the domain packages directly, passing a session."""
