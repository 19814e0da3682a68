"""The assessment core: request body -> facts -> rules -> RiskAssessment. No Flask, no I/O."""
