"""Search feedback: impressions and clicks, validated at the API, carried by Kafka, kept in SQL."""
