DROP TABLE IF EXISTS webhook_replays;
DROP TABLE IF EXISTS webhook_deliveries;
