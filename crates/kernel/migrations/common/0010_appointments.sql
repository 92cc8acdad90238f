-- Appointments (issue 4): service halls (政务服务中心) with windows, opening hours and slot
-- capacity per service; bookings with their outcome (attended or no-show).
CREATE TABLE halls (
    id          TEXT PRIMARY KEY,
    code        TEXT NOT NULL UNIQUE,
    region_path TEXT NOT NULL,
    -- names, address, opening hours, slot length, windows and capacities as JSON
    body        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE appointments (
    id           TEXT PRIMARY KEY,
    hall_id      TEXT NOT NULL REFERENCES halls(id),
    service_code TEXT NOT NULL,
    account_id   TEXT NOT NULL REFERENCES accounts(id),
    slot_start   BIGINT NOT NULL,
    slot_end     BIGINT NOT NULL,
    -- booked, cancelled, attended or no_show
    status       TEXT NOT NULL,
    ticket       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX appointments_hall_day ON appointments(hall_id, slot_start);
CREATE INDEX appointments_account ON appointments(account_id, slot_start);
CREATE INDEX appointments_due ON appointments(status, slot_end);

-- Bookings per slot: one row per (hall, service, start), counted up to the capacity in a
-- single UPDATE so that two people cannot take the last place.
CREATE TABLE appointment_slots (
    hall_id      TEXT NOT NULL REFERENCES halls(id),
    service_code TEXT NOT NULL,
    slot_start   BIGINT NOT NULL,
    booked       BIGINT NOT NULL,
    PRIMARY KEY (hall_id, service_code, slot_start)
);
