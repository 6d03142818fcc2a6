-- Records: versioned values grouped in collections. A write names the
-- version it read, and the UPDATE ... WHERE version = $n (or an insert that
-- does nothing when the key exists) is the compare-and-swap. Keys compare
-- byte by byte (COLLATE "C"), so List returns them in the same order as the
-- embedded store, whatever the database's locale.
CREATE TABLE coalmine_records (
    collection text COLLATE "C" NOT NULL,
    key        text COLLATE "C" NOT NULL,
    version    bigint NOT NULL CHECK (version > 0),
    data       bytea  NOT NULL,
    PRIMARY KEY (collection, key)
);

-- One row per event stream holding the last sequence number handed out.
-- It outlives Trim, so a number is never handed out twice, and its row lock
-- makes appenders of one stream take their turns.
CREATE TABLE coalmine_streams (
    stream   text COLLATE "C" PRIMARY KEY,
    last_seq bigint NOT NULL CHECK (last_seq >= 0)
);

CREATE TABLE coalmine_events (
    stream text COLLATE "C" NOT NULL,
    seq    bigint NOT NULL CHECK (seq > 0),
    data   bytea  NOT NULL,
    PRIMARY KEY (stream, seq)
);
