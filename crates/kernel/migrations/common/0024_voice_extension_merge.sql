-- 12345, continued: 延期 (the handling department asks once for more working days, a
-- dispatcher grants or refuses), near-duplicates (a request about the same thing as an open
-- one nearby, proposed for merging and merged by a dispatcher: it then follows the other and
-- receives its answer), and photos (the person's uploads, through the services' pipeline).

-- the working days asked for (0 until asked) and why; asked at most once
ALTER TABLE voice_requests ADD COLUMN extension_days INTEGER NOT NULL DEFAULT 0;
ALTER TABLE voice_requests ADD COLUMN extension_reason TEXT;
-- the open request nearby this one looks like (proposed at intake), and the one it was merged into
ALTER TABLE voice_requests ADD COLUMN similar_to TEXT REFERENCES voice_requests(id);
ALTER TABLE voice_requests ADD COLUMN merged_into TEXT REFERENCES voice_requests(id);
CREATE INDEX voice_requests_similar ON voice_requests(similar_to);
CREATE INDEX voice_requests_merged ON voice_requests(merged_into);
CREATE INDEX voice_requests_region ON voice_requests(region_code, created_at);

-- Photos with a request: uploads of the services' pipeline (typed by content, size-limited,
-- scanned), named here with what the request's pages show of them.
CREATE TABLE voice_photos (
    request_id   TEXT NOT NULL REFERENCES voice_requests(id),
    document_id  TEXT NOT NULL,
    position     INTEGER NOT NULL,
    filename     TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size         BIGINT NOT NULL,
    PRIMARY KEY (request_id, document_id)
);
