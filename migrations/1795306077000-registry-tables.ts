import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Tables of the JDBC registry (seed 003). Owned by libs/registry/src/jdbc, which documents the
 * protocol; the write paths live in the functions below so that each registry write is one
 * statement, one round trip and one transaction.
 *
 * Lock order, to rule out deadlocks: the event lock (advisory, below) first, then client rows.
 * The heartbeat updates its own client row without the event lock, so a sweep takes the client
 * rows it removes with SKIP LOCKED and never waits on a heartbeat that waits on the sweep.
 *
 * Event ids: every transaction that inserts events first takes pg_advisory_xact_lock on one
 * fixed key, so at most one such transaction is in flight and ids become visible in id order.
 * Without it a reader could see id 6 committed while id 5 is still in flight, advance past 5
 * and never deliver it. The lock is released after the commit is visible (PostgreSQL releases
 * locks after it marks the transaction committed), so a reader that sees id n also sees every
 * committed id below n; ids of rolled-back transactions are gaps that never fill in.
 */
const EVENT_LOCK = 'pg_advisory_xact_lock(1886351984, 1919248129)'; // "porp", "reg\x01"

const ALIVE = `clock_timestamp() - last_heartbeat <= session_timeout_ms * interval '1 millisecond'`;
const EXPIRED = `clock_timestamp() - last_heartbeat > session_timeout_ms * interval '1 millisecond'`;

const UP: string[] = [
  `CREATE TABLE registry_client_heartbeat (
    client_id text PRIMARY KEY,
    host text NOT NULL,
    pid integer NOT NULL,
    session_timeout_ms bigint NOT NULL CHECK (session_timeout_ms > 0),
    last_heartbeat timestamptz NOT NULL DEFAULT clock_timestamp(),
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
  )`,
  // Keys sort bytewise (COLLATE "C") so "everything under /a" is the index range ['/a/', '/a0').
  // The foreign key keeps ephemeral rows from outliving their client: a write by a client whose
  // row is gone fails instead of leaving data nobody will ever remove.
  `CREATE TABLE registry_data (
    key text COLLATE "C" PRIMARY KEY,
    value text NOT NULL,
    type text NOT NULL CHECK (type IN ('EPHEMERAL', 'PERSISTENT')),
    owner_client_id text REFERENCES registry_client_heartbeat (client_id),
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT registry_data_owner_iff_ephemeral CHECK ((type = 'EPHEMERAL') = (owner_client_id IS NOT NULL))
  )`,
  `CREATE INDEX registry_data_owner_idx ON registry_data (owner_client_id) WHERE owner_client_id IS NOT NULL`,
  // token identifies one acquisition, so a stale handle can never release a later holder's lock.
  `CREATE TABLE registry_lock (
    key text COLLATE "C" PRIMARY KEY,
    owner_client_id text NOT NULL REFERENCES registry_client_heartbeat (client_id),
    token text NOT NULL,
    acquired_at timestamptz NOT NULL DEFAULT clock_timestamp()
  )`,
  `CREATE INDEX registry_lock_owner_idx ON registry_lock (owner_client_id)`,
  `CREATE TABLE registry_data_change_event (
    id bigserial PRIMARY KEY,
    type text NOT NULL CHECK (type IN ('ADD', 'UPDATE', 'REMOVE')),
    key text NOT NULL,
    value text,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
  )`,
  `CREATE INDEX registry_data_change_event_created_at_idx ON registry_data_change_event (created_at)`,

  // Removes clients with their ephemeral data (one REMOVE event each, carrying the last value)
  // and their locks. The caller holds the event lock and has locked the client rows FOR UPDATE,
  // so no new data or lock can reference them before they are deleted.
  `CREATE FUNCTION registry_remove_clients_locked(p_ids text[]) RETURNS void LANGUAGE plpgsql AS $$
  DECLARE
    v_last bigint;
    v_locks bigint;
  BEGIN
    WITH d AS (DELETE FROM registry_data WHERE owner_client_id = ANY (p_ids) RETURNING key, value),
      e AS (
        INSERT INTO registry_data_change_event (type, key, value)
        SELECT 'REMOVE', key, value FROM d ORDER BY key
        RETURNING id
      )
    SELECT max(id) INTO v_last FROM e;
    WITH l AS (DELETE FROM registry_lock WHERE owner_client_id = ANY (p_ids) RETURNING key)
    SELECT count(pg_notify('porpoise_registry_lock', key)) INTO v_locks FROM l;
    DELETE FROM registry_client_heartbeat WHERE client_id = ANY (p_ids);
    IF v_last IS NOT NULL THEN
      PERFORM pg_notify('porpoise_registry_event', v_last::text);
    END IF;
  END
  $$`,

  `CREATE FUNCTION registry_remove_client(p_id text) RETURNS boolean LANGUAGE plpgsql AS $$
  BEGIN
    PERFORM ${EVENT_LOCK};
    PERFORM 1 FROM registry_client_heartbeat WHERE client_id = p_id FOR UPDATE;
    IF NOT FOUND THEN
      RETURN false;
    END IF;
    PERFORM registry_remove_clients_locked(ARRAY[p_id]);
    RETURN true;
  END
  $$`,

  // Opens a session; after a LOST the client passes its old id so that whatever is left of the
  // old session goes (with REMOVE events) in the same transaction that opens the new one.
  `CREATE FUNCTION registry_register_client(
    p_id text, p_host text, p_pid integer, p_session_timeout_ms bigint, p_old_id text
  ) RETURNS void LANGUAGE plpgsql AS $$
  BEGIN
    IF p_old_id IS NOT NULL THEN
      PERFORM registry_remove_client(p_old_id);
    END IF;
    INSERT INTO registry_client_heartbeat (client_id, host, pid, session_timeout_ms)
    VALUES (p_id, p_host, p_pid, p_session_timeout_ms);
  END
  $$`,

  // One heartbeat: refresh our row unless the database already judges it expired (then the
  // session is gone and must not be revived), sweep every expired client, and optionally prune
  // old events. Returns whether our session is alive, and in how many ms (by the database's
  // clock) the next other client expires if it stays silent, so a sweep can run right then.
  `CREATE FUNCTION registry_heartbeat(
    p_id text, p_event_retention_ms bigint, OUT alive boolean, OUT next_expiry_ms double precision
  ) LANGUAGE plpgsql AS $$
  DECLARE
    v_expired text[];
  BEGIN
    UPDATE registry_client_heartbeat SET last_heartbeat = clock_timestamp()
    WHERE client_id = p_id AND ${ALIVE};
    alive := FOUND;
    -- The unlocked check keeps the common case (nobody expired) off the event lock.
    IF EXISTS (SELECT 1 FROM registry_client_heartbeat WHERE ${EXPIRED}) THEN
      PERFORM ${EVENT_LOCK};
      SELECT array_agg(client_id) INTO v_expired FROM (
        SELECT client_id FROM registry_client_heartbeat WHERE ${EXPIRED} FOR UPDATE SKIP LOCKED
      ) s;
      IF v_expired IS NOT NULL THEN
        PERFORM registry_remove_clients_locked(v_expired);
      END IF;
    END IF;
    SELECT 1000 * extract(epoch FROM min(last_heartbeat + session_timeout_ms * interval '1 millisecond') - clock_timestamp())
    INTO next_expiry_ms
    FROM registry_client_heartbeat WHERE client_id <> p_id;
    IF p_event_retention_ms IS NOT NULL THEN
      DELETE FROM registry_data_change_event
      WHERE created_at < clock_timestamp() - p_event_retention_ms * interval '1 millisecond';
    END IF;
  END
  $$`,

  // Creates or replaces a value and records ADD or UPDATE. p_owner is null for persistent data;
  // an ephemeral put needs a live session by the database's clock, else SQLSTATE PR001.
  `CREATE FUNCTION registry_put(p_key text, p_value text, p_owner text) RETURNS bigint LANGUAGE plpgsql AS $$
  DECLARE
    v_existed boolean;
    v_id bigint;
  BEGIN
    PERFORM ${EVENT_LOCK};
    IF p_owner IS NOT NULL THEN
      PERFORM 1 FROM registry_client_heartbeat WHERE client_id = p_owner AND ${ALIVE} FOR KEY SHARE;
      IF NOT FOUND THEN
        RAISE EXCEPTION 'registry session % has expired', p_owner USING ERRCODE = 'PR001';
      END IF;
    END IF;
    v_existed := EXISTS (SELECT 1 FROM registry_data WHERE key = p_key);
    INSERT INTO registry_data (key, value, type, owner_client_id)
    VALUES (p_key, p_value, CASE WHEN p_owner IS NULL THEN 'PERSISTENT' ELSE 'EPHEMERAL' END, p_owner)
    ON CONFLICT (key) DO UPDATE SET
      value = EXCLUDED.value,
      type = EXCLUDED.type,
      owner_client_id = EXCLUDED.owner_client_id,
      updated_at = clock_timestamp();
    INSERT INTO registry_data_change_event (type, key, value)
    VALUES (CASE WHEN v_existed THEN 'UPDATE' ELSE 'ADD' END, p_key, p_value)
    RETURNING id INTO v_id;
    PERFORM pg_notify('porpoise_registry_event', v_id::text);
    RETURN v_id;
  END
  $$`,

  // Deletes a key and everything under it, deepest first, with a REMOVE event each.
  `CREATE FUNCTION registry_delete(p_key text) RETURNS bigint LANGUAGE plpgsql AS $$
  DECLARE
    v_lo text := CASE WHEN p_key = '/' THEN '/' ELSE p_key || '/' END;
    v_hi text := CASE WHEN p_key = '/' THEN '0' ELSE p_key || '0' END; -- '0' follows '/' in ASCII
    v_count bigint;
    v_last bigint;
  BEGIN
    PERFORM ${EVENT_LOCK};
    WITH d AS (
        DELETE FROM registry_data
        WHERE key = p_key OR (key >= v_lo COLLATE "C" AND key < v_hi COLLATE "C")
        RETURNING key, value
      ),
      e AS (
        INSERT INTO registry_data_change_event (type, key, value)
        SELECT 'REMOVE', key, value FROM d ORDER BY key DESC
        RETURNING id
      )
    SELECT count(*), max(id) INTO v_count, v_last FROM e;
    IF v_last IS NOT NULL THEN
      PERFORM pg_notify('porpoise_registry_event', v_last::text);
    END IF;
    RETURN v_count;
  END
  $$`,

  // One attempt at a lock. Idempotent per token: an attempt whose reply was lost and is retried
  // finds its own row and reports success instead of waiting on itself.
  `CREATE FUNCTION registry_try_lock(p_key text, p_owner text, p_token text) RETURNS boolean LANGUAGE plpgsql AS $$
  BEGIN
    PERFORM 1 FROM registry_client_heartbeat WHERE client_id = p_owner AND ${ALIVE} FOR KEY SHARE;
    IF NOT FOUND THEN
      RAISE EXCEPTION 'registry session % has expired', p_owner USING ERRCODE = 'PR001';
    END IF;
    INSERT INTO registry_lock (key, owner_client_id, token) VALUES (p_key, p_owner, p_token)
    ON CONFLICT (key) DO NOTHING;
    RETURN EXISTS (SELECT 1 FROM registry_lock WHERE key = p_key AND token = p_token);
  END
  $$`,
];

const DOWN: string[] = [
  'DROP FUNCTION IF EXISTS registry_try_lock(text, text, text)',
  'DROP FUNCTION IF EXISTS registry_delete(text)',
  'DROP FUNCTION IF EXISTS registry_put(text, text, text)',
  'DROP FUNCTION IF EXISTS registry_heartbeat(text, bigint)',
  'DROP FUNCTION IF EXISTS registry_register_client(text, text, integer, bigint, text)',
  'DROP FUNCTION IF EXISTS registry_remove_client(text)',
  'DROP FUNCTION IF EXISTS registry_remove_clients_locked(text[])',
  'DROP TABLE IF EXISTS registry_data_change_event',
  'DROP TABLE IF EXISTS registry_lock',
  'DROP TABLE IF EXISTS registry_data',
  'DROP TABLE IF EXISTS registry_client_heartbeat',
];

/** Tables of the JDBC registry (seed 003). Owned by libs/registry/src/jdbc. */
export class RegistryTables1795306077000 implements MigrationInterface {
  name = 'RegistryTables1795306077000';

  async up(q: QueryRunner): Promise<void> {
    for (const sql of UP) await q.query(sql);
  }

  async down(q: QueryRunner): Promise<void> {
    for (const sql of DOWN) await q.query(sql);
  }
}
