"""One EVSE's charging logic: the session machine, its named limits, the transaction policy, and its port."""
