package postgres

import (
	"errors"
	"strings"
	"testing"
	"testing/fstest"
)

func TestEmbeddedMigrations(t *testing.T) {
	ms, err := loadMigrations(migrationFiles, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 || SchemaVersion() != len(ms) {
		t.Fatalf("%d migrations, SchemaVersion %d", len(ms), SchemaVersion())
	}
	for i, m := range ms {
		if m.Version != i+1 || m.Name == "" || strings.TrimSpace(m.SQL) == "" {
			t.Errorf("migration %d: %+v", i, m)
		}
	}
}

func TestLoadMigrationsRefusesGapsAndOddNames(t *testing.T) {
	sql := &fstest.MapFile{Data: []byte("SELECT 1")}
	cases := map[string]fstest.MapFS{
		"expected version 2 next":  {"m/0001_a.sql": sql, "m/0003_c.sql": sql},
		"expected version 1 next":  {"m/0002_b.sql": sql},
		"is not named NNNN_name":   {"m/0001_a.sql": sql, "m/2_b.sql": sql},
		"is not named NNNN_name.s": {"m/0001_A.SQL": sql},
	}
	for want, fsys := range cases {
		if _, err := loadMigrations(fsys, "m"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: got %v, want an error saying %q", fsys, err, want)
		}
	}
	ms, err := loadMigrations(fstest.MapFS{"m/0002_b.sql": sql, "m/0001_a.sql": sql}, "m")
	if err != nil || len(ms) != 2 || ms[0].Name != "a" || ms[1].Version != 2 {
		t.Fatalf("in order: %+v %v", ms, err)
	}
}

func TestNextMigration(t *testing.T) {
	known := []migration{{Version: 1, Name: "one"}, {Version: 2, Name: "two"}}
	for applied, want := range map[int]string{0: "one", 1: "two", 2: ""} {
		next, err := nextMigration(applied, known)
		got := ""
		if next != nil {
			got = next.Name
		}
		if err != nil || got != want {
			t.Errorf("at version %d: next %q, %v; want %q", applied, got, err, want)
		}
	}
	_, err := nextMigration(3, known)
	var nse *NewerSchemaError
	if !errors.As(err, &nse) || err.Error() != "database schema version 3 is newer than this coalmine (2): upgrade coalmine" {
		t.Fatalf("at version 3: %v", err)
	}
}
