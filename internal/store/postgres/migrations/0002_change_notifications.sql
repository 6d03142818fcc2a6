-- Every change of a record is announced on the channel coalmine_changes,
-- with "collection/key" as the payload, when its transaction commits
-- (PostgreSQL delivers NOTIFY at commit, and drops it on rollback). Replicas
-- LISTEN to it to re-read what changed at once instead of polling. A
-- trigger rather than a NOTIFY sent by the writer: any writer, this binary
-- or a later one, announces its changes, and a write costs no extra round
-- trip.
CREATE FUNCTION coalmine_notify_change() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('coalmine_changes', OLD.collection || '/' || OLD.key);
    ELSE
        PERFORM pg_notify('coalmine_changes', NEW.collection || '/' || NEW.key);
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER coalmine_records_changed
    AFTER INSERT OR UPDATE OR DELETE ON coalmine_records
    FOR EACH ROW EXECUTE FUNCTION coalmine_notify_change();
