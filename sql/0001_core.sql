-- Core schema: the twelve tables of the ownership contract.
-- Prices are Kalshi's *_dollars strings stored as numeric dollars; counts are *_fp strings
-- stored as numeric; strikes are numeric; object times are timestamptz; unknown fields are
-- kept in jsonb. Every table has a natural key so replays and re-runs are idempotent.

CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE schema_version (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    applied_by  text NOT NULL DEFAULT current_user
);

CREATE TABLE events (
    event_ticker            text PRIMARY KEY,
    series_ticker           text,
    title                   text,
    sub_title               text,
    category                text,
    collateral_return_type  text,
    mutually_exclusive      boolean,
    strike_date             timestamptz,
    strike_period           text,
    last_updated_ts         timestamptz,
    product_metadata        jsonb,
    raw                     jsonb NOT NULL DEFAULT '{}'::jsonb,
    first_seen_at           timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_series_ticker_idx ON events (series_ticker);
CREATE INDEX events_strike_period_idx ON events (strike_period);

CREATE TABLE markets (
    ticker                    text PRIMARY KEY,
    event_ticker              text NOT NULL REFERENCES events (event_ticker),
    market_type               text,
    title                     text,
    subtitle                  text,
    yes_sub_title             text,
    no_sub_title              text,
    status                    text,
    result                    text,
    created_time              timestamptz,
    updated_time              timestamptz,
    open_time                 timestamptz,
    close_time                timestamptz,
    expected_expiration_time  timestamptz,
    latest_expiration_time    timestamptz,
    expiration_time           timestamptz,
    settlement_ts             timestamptz,
    settlement_timer_seconds  integer,
    can_close_early           boolean,
    strike_type               text,
    floor_strike              numeric,
    cap_strike                numeric,
    functional_strike         text,
    custom_strike             jsonb,
    settlement_value_dollars  numeric,
    expiration_value          text,
    last_price_dollars        numeric,
    yes_bid_dollars           numeric,
    yes_ask_dollars           numeric,
    no_bid_dollars            numeric,
    no_ask_dollars            numeric,
    volume_fp                 numeric,
    volume_24h_fp             numeric,
    open_interest_fp          numeric,
    notional_value_dollars    numeric,
    rules_primary             text,
    rules_secondary           text,
    price_level_structure     text,
    price_ranges              jsonb,
    raw                       jsonb NOT NULL DEFAULT '{}'::jsonb,
    first_seen_at             timestamptz NOT NULL DEFAULT now(),
    updated_at                timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX markets_event_ticker_idx ON markets (event_ticker);
CREATE INDEX markets_status_close_idx ON markets (status, close_time);
CREATE INDEX markets_close_time_idx ON markets (close_time);

-- The set the ws role subscribes to; rest keeps it equal to the discovered open/paused markets.
CREATE TABLE active_markets (
    ticker         text PRIMARY KEY REFERENCES markets (ticker) ON DELETE CASCADE,
    event_ticker   text NOT NULL,
    series_ticker  text,
    strike_period  text,
    status         text NOT NULL,
    open_time      timestamptz,
    close_time     timestamptz,
    last_seen_at   timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX active_markets_close_time_idx ON active_markets (close_time, ticker);

-- Candlesticks, range-partitioned by month on end_period_ts (see ingestor_ensure_partitions).
-- No foreign key to markets: candles for archived markets stay, and deletes never cascade here.
CREATE TABLE market_candles (
    ticker             text NOT NULL,
    period_minutes     smallint NOT NULL CHECK (period_minutes IN (1, 60, 1440)),
    end_period_ts      timestamptz NOT NULL,
    yes_bid_open       numeric,
    yes_bid_low        numeric,
    yes_bid_high       numeric,
    yes_bid_close      numeric,
    yes_ask_open       numeric,
    yes_ask_low        numeric,
    yes_ask_high       numeric,
    yes_ask_close      numeric,
    price_open         numeric,
    price_low          numeric,
    price_high         numeric,
    price_close        numeric,
    price_mean         numeric,
    price_previous     numeric,
    volume_fp          numeric,
    open_interest_fp   numeric,
    extra              jsonb,
    fetched_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (ticker, period_minutes, end_period_ts)
) PARTITION BY RANGE (end_period_ts);
CREATE TABLE market_candles_default PARTITION OF market_candles DEFAULT;

-- Live ticker ticks, range-partitioned by month on the exchange timestamp.
-- fingerprint is a hash of the tick's values, so a replayed frame is the same row while two
-- distinct updates in the same millisecond are both kept.
CREATE TABLE market_ticks (
    ticker                text NOT NULL,
    ts                    timestamptz NOT NULL,
    fingerprint           bigint NOT NULL,
    received_at           timestamptz NOT NULL,
    price_dollars         numeric,
    yes_bid_dollars       numeric,
    yes_ask_dollars       numeric,
    yes_bid_size_fp       numeric,
    yes_ask_size_fp       numeric,
    last_trade_size_fp    numeric,
    volume_fp             numeric,
    open_interest_fp      numeric,
    dollar_volume         bigint,
    dollar_open_interest  bigint,
    extra                 jsonb,
    PRIMARY KEY (ticker, ts, fingerprint)
) PARTITION BY RANGE (ts);
CREATE TABLE market_ticks_default PARTITION OF market_ticks DEFAULT;
CREATE INDEX market_ticks_ts_idx ON market_ticks (ts);

CREATE TABLE lifecycle_events (
    id                        bigserial PRIMARY KEY,
    msg_type                  text NOT NULL,
    event_type                text,
    market_ticker             text,
    event_ticker              text,
    ts                        timestamptz NOT NULL,
    received_at               timestamptz NOT NULL DEFAULT now(),
    open_ts                   timestamptz,
    close_ts                  timestamptz,
    determination_ts          timestamptz,
    settled_ts                timestamptz,
    result                    text,
    settlement_value_dollars  numeric,
    is_deactivated            boolean,
    fingerprint               text NOT NULL UNIQUE,
    raw                       jsonb NOT NULL
);
CREATE INDEX lifecycle_events_market_ts_idx ON lifecycle_events (market_ticker, ts DESC);
CREATE INDEX lifecycle_events_received_idx ON lifecycle_events (received_at);

CREATE TABLE work_queue (
    id                bigserial PRIMARY KEY,
    job_type          text NOT NULL,
    dedupe_key        text,
    payload           jsonb NOT NULL,
    status            text NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'running', 'done', 'failed')),
    attempts          integer NOT NULL DEFAULT 0,
    max_attempts      integer NOT NULL DEFAULT 5 CHECK (max_attempts >= 1),
    available_at      timestamptz NOT NULL DEFAULT now(),
    locked_by         text,
    locked_at         timestamptz,
    lease_expires_at  timestamptz,
    last_error        text,
    enqueued_by       text NOT NULL DEFAULT current_user,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    finished_at       timestamptz
);
-- At most one live (pending or running) job per dedupe key.
CREATE UNIQUE INDEX work_queue_live_dedupe_idx ON work_queue (job_type, dedupe_key)
    WHERE status IN ('pending', 'running') AND dedupe_key IS NOT NULL;
CREATE INDEX work_queue_pending_idx ON work_queue (available_at, id) WHERE status = 'pending';
CREATE INDEX work_queue_running_lease_idx ON work_queue (lease_expires_at) WHERE status = 'running';
CREATE INDEX work_queue_status_updated_idx ON work_queue (status, updated_at);

CREATE TABLE prediction_runs (
    id                   bigserial PRIMARY KEY,
    started_at           timestamptz NOT NULL DEFAULT now(),
    finished_at          timestamptz,
    status               text NOT NULL DEFAULT 'running'
                         CHECK (status IN ('running', 'completed', 'failed')),
    agent                text NOT NULL,
    model                text,
    params               jsonb NOT NULL DEFAULT '{}'::jsonb,
    market_count         integer NOT NULL DEFAULT 0,
    error                text,
    brier_score          numeric,
    market_brier_score   numeric,
    scored_count         integer,
    scored_at            timestamptz
);
CREATE INDEX prediction_runs_started_idx ON prediction_runs (started_at DESC);

CREATE TABLE market_predictions (
    id                  bigserial PRIMARY KEY,
    run_id              bigint NOT NULL REFERENCES prediction_runs (id) ON DELETE CASCADE,
    ticker              text NOT NULL,
    event_ticker        text,
    predicted_yes_prob  numeric NOT NULL CHECK (predicted_yes_prob BETWEEN 0 AND 1),
    market_yes_prob     numeric CHECK (market_yes_prob BETWEEN 0 AND 1),
    rationale           text,
    raw                 jsonb,
    created_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (run_id, ticker)
);
CREATE INDEX market_predictions_ticker_idx ON market_predictions (ticker, created_at DESC);

CREATE TABLE rag_documents (
    id               bigserial PRIMARY KEY,
    source           text NOT NULL CHECK (source IN ('event', 'market')),
    source_id        text NOT NULL,
    event_ticker     text,
    ticker           text,
    content          text NOT NULL,
    content_sha256   text NOT NULL,
    embedding_model  text,
    embedding        vector(384),
    metadata         jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source, source_id)
);
CREATE INDEX rag_documents_embedding_idx ON rag_documents USING hnsw (embedding vector_cosine_ops);
CREATE INDEX rag_documents_event_idx ON rag_documents (event_ticker);

-- Freshness keys. value is ISO-8601 UTC with a Z suffix, written only by ingestor.db.ingest_state.
CREATE TABLE ingest_state (
    key         text PRIMARY KEY,
    value       text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    updated_by  text NOT NULL
);

-- Keeps monthly partitions of market_ticks and market_candles from the oldest month that has
-- rows in the default partition through `months_ahead` months past now. Rows that landed in
-- the default partition are moved into their month, so creating a partition never fails.
-- SECURITY DEFINER so the long-running rest role can keep partitions ahead without DDL rights.
CREATE FUNCTION ingestor_ensure_partitions(months_ahead integer DEFAULT 3)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
DECLARE
    spec        text[];
    parent      text;
    col         text;
    first_month date;
    last_month  date;
    m           date;
    lo          timestamptz;
    hi          timestamptz;
    part        text;
    created     integer := 0;
BEGIN
    IF months_ahead < 0 OR months_ahead > 120 THEN
        RAISE EXCEPTION 'months_ahead must be between 0 and 120, got %', months_ahead;
    END IF;
    last_month := (date_trunc('month', now() AT TIME ZONE 'UTC')
                   + make_interval(months => months_ahead))::date;
    FOREACH spec SLICE 1 IN ARRAY ARRAY[['market_ticks', 'ts'],
                                        ['market_candles', 'end_period_ts']] LOOP
        parent := spec[1];
        col := spec[2];
        EXECUTE format('SELECT (date_trunc(''month'', min(%I) AT TIME ZONE ''UTC''))::date FROM %I',
                       col, parent || '_default')
            INTO first_month;
        first_month := least(coalesce(first_month, last_month),
                             date_trunc('month', now() AT TIME ZONE 'UTC')::date);
        m := first_month;
        WHILE m <= last_month LOOP
            part := format('%s_p%s', parent, to_char(m, 'YYYY_MM'));
            IF to_regclass(part) IS NULL THEN
                lo := m::timestamp AT TIME ZONE 'UTC';
                hi := (m + interval '1 month')::timestamp AT TIME ZONE 'UTC';
                EXECUTE format('LOCK TABLE %I IN ACCESS EXCLUSIVE MODE', parent || '_default');
                EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
                               part, parent);
                EXECUTE format('WITH moved AS (DELETE FROM %I WHERE %I >= $1 AND %I < $2 RETURNING *) '
                               'INSERT INTO %I SELECT * FROM moved',
                               parent || '_default', col, col, part)
                    USING lo, hi;
                EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                               parent, part, lo, hi);
                created := created + 1;
            END IF;
            m := (m + interval '1 month')::date;
        END LOOP;
    END LOOP;
    RETURN created;
END
$$;
REVOKE ALL ON FUNCTION ingestor_ensure_partitions(integer) FROM PUBLIC;
