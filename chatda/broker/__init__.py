"""Message broker access: the local Tansu broker for development and the Kafka client factories."""
