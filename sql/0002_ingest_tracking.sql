-- What the streaming and backfill loops record about themselves.

-- Windows in which the ws role could not see ticks (disconnected, stale, subscription killed
-- by error 25, ticks dropped under back-pressure). Ticks missed there can only be recovered as
-- candles; the rest role and the portal read this table.
CREATE TABLE ws_gaps (
    id             bigserial PRIMARY KEY,
    shard_id       integer NOT NULL,
    shard_count    integer NOT NULL,
    reason         text NOT NULL,
    started_at     timestamptz NOT NULL,
    ended_at       timestamptz,
    markets        text[] NOT NULL DEFAULT '{}',
    market_count   integer NOT NULL DEFAULT 0,
    dropped_ticks  bigint NOT NULL DEFAULT 0,
    detail         jsonb,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ws_gaps_started_idx ON ws_gaps (started_at DESC);
CREATE INDEX ws_gaps_open_idx ON ws_gaps (shard_id) WHERE ended_at IS NULL;

-- Newest quote per market for fast reads (portal, rag); upserted only when newer.
CREATE TABLE market_quotes_latest (
    ticker               text PRIMARY KEY,
    ts                   timestamptz NOT NULL,
    received_at          timestamptz NOT NULL,
    price_dollars        numeric,
    yes_bid_dollars      numeric,
    yes_ask_dollars      numeric,
    volume_fp            numeric,
    open_interest_fp     numeric,
    updated_at           timestamptz NOT NULL DEFAULT now()
);

-- One row per backfill pass of the rest role: its window and how far it got.
CREATE TABLE backfill_runs (
    id               bigserial PRIMARY KEY,
    started_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    status           text NOT NULL DEFAULT 'running'
                     CHECK (status IN ('running', 'completed', 'failed', 'interrupted')),
    window_start     timestamptz,
    window_end       timestamptz,
    markets_total    integer NOT NULL DEFAULT 0,
    markets_done     integer NOT NULL DEFAULT 0,
    candles_written  bigint NOT NULL DEFAULT 0,
    requests         integer NOT NULL DEFAULT 0,
    errors           integer NOT NULL DEFAULT 0,
    detail           jsonb,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX backfill_runs_started_idx ON backfill_runs (started_at DESC);
