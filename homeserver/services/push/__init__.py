"""Push notifications: rules, evaluation per event, pushers, delivery to push gateways."""
