package nginx

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

// The weight state lives in a directory NGINX's workers stat on every
// request (see the package comment):
//
//	STATE/current -> w-GEN-XXXX         the state the workers route with
//	STATE/full/00 ... 99                every b2: a full row, shared
//	STATE/w-GEN-XXXX/status.json        what the status location answers
//	STATE/w-GEN-XXXX/r00 -> ../full     rows b1 < A
//	STATE/w-GEN-XXXX/rA/00 ... B-1      row A: b2 < B, each a link to
//	                                    ../../full/NN
//
// A new state is built in a fresh directory and put in place by renaming
// a new link over current, one atomic step, so every request sees either
// the old weight and status or the new ones. The state it replaced is
// kept until the next change, for requests that were resolving its path
// at that instant.
const (
	currentLink = "current"
	statePrefix = "w-"
	statusFile  = "status.json"
	fullRow     = "full"
)

// Rows splits a weight into the full rows A and the buckets B of row A
// the canary has: weight = Buckets*A + B basis points.
func Rows(w spec.Weight) (full, partial int) {
	return int(w) / Buckets, int(w) % Buckets
}

// stateFiles lists, relative to a state's directory, the directories
// and the links (name -> target) that route weight w: every link leads to
// a file of the shared full row (fullRowFiles), since a link costs one
// system call where a file costs three. Pure, so the layout is tested
// without a file system.
func stateFiles(w spec.Weight) (dirs []string, links [][2]string) {
	a, b := Rows(w)
	for i := 0; i < a; i++ {
		links = append(links, [2]string{fmt.Sprintf("r%02d", i), "../" + fullRow})
	}
	if b > 0 {
		row := fmt.Sprintf("r%02d", a)
		dirs = append(dirs, row)
		for i := 0; i < b; i++ {
			links = append(links, [2]string{fmt.Sprintf("%s/%02d", row, i), fmt.Sprintf("../../%s/%02d", fullRow, i)})
		}
	}
	return dirs, links
}

// fullRowFiles are the files of the shared full row, one per b2.
func fullRowFiles() []string {
	out := make([]string, Buckets)
	for i := range out {
		out[i] = fmt.Sprintf("%02d", i)
	}
	return out
}

// stateStore writes and swaps the weight states of one state directory.
type stateStore struct {
	dir string
}

// current returns the name of the state current points to, "" if none.
func (s stateStore) current() string {
	target, err := os.Readlink(filepath.Join(s.dir, currentLink))
	if err != nil {
		return ""
	}
	return filepath.Base(target)
}

// readStatus returns the status file of the current state.
func (s stateStore) readStatus() (Status, error) {
	var st Status
	b, err := os.ReadFile(filepath.Join(s.dir, currentLink, statusFile))
	if err != nil {
		return st, err
	}
	err = json.Unmarshal(b, &st)
	return st, err
}

// write builds the state of st and makes it current. It returns the state
// it replaced ("" if none), which restore puts back.
func (s stateStore) write(st Status) (previous string, err error) {
	// Workers run as an unprivileged user (nobody, www-data): they must
	// be able to reach and stat every file, whatever coalmine's umask.
	if err := mkdirAll(s.dir); err != nil {
		return "", fmt.Errorf("create the state directory %s: %w", s.dir, err)
	}
	if err := s.ensureFullRow(); err != nil {
		return "", fmt.Errorf("write the full row of %s: %w", s.dir, err)
	}
	name, err := os.MkdirTemp(s.dir, fmt.Sprintf("%s%d-", statePrefix, st.Generation))
	if err != nil {
		return "", fmt.Errorf("create a weight state in %s: %w", s.dir, err)
	}
	if err := buildState(name, st); err != nil {
		os.RemoveAll(name)
		return "", fmt.Errorf("write the weight state %s: %w", name, err)
	}
	previous = s.current()
	if err := s.point(filepath.Base(name)); err != nil {
		os.RemoveAll(name)
		return "", err
	}
	s.prune(filepath.Base(name), previous)
	return previous, nil
}

// ensureFullRow creates the shared full row's missing files. Its files
// are never removed, so the rows of every state may point to it.
func (s stateStore) ensureFullRow() error {
	dir := filepath.Join(s.dir, fullRow)
	if err := mkdirAll(dir); err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, e := range entries {
		have[e.Name()] = e.Type().IsRegular()
	}
	for _, f := range fullRowFiles() {
		if have[f] {
			continue
		}
		if err := writeFile(filepath.Join(dir, f), nil); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	}
	return nil
}

func buildState(dir string, st Status) error {
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	dirs, links := stateFiles(st.Weight)
	for _, d := range dirs {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
		if err := os.Chmod(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	for _, l := range links {
		if err := os.Symlink(l[1], filepath.Join(dir, l[0])); err != nil {
			return err
		}
	}
	body, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, statusFile), body)
}

func writeFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	if werr == nil {
		werr = f.Chmod(0o644)
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	return werr
}

// point makes current point to the state name, in one rename.
func (s stateStore) point(name string) error {
	tmp := filepath.Join(s.dir, ".current-"+name)
	os.Remove(tmp)
	if err := os.Symlink(name, tmp); err != nil {
		return fmt.Errorf("link the weight state %s: %w", name, err)
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, currentLink)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("make %s the current weight state: %w", name, err)
	}
	return nil
}

// restore makes previous current again ("" removes current: NGINX then
// routes nothing to the canary by weight and has no status), after a
// change that did not take.
func (s stateStore) restore(previous string) error {
	if previous == "" {
		err := os.Remove(filepath.Join(s.dir, currentLink))
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	return s.point(previous)
}

// prune removes the states other than keep, best effort: a leftover only
// takes space.
func (s stateStore) prune(keep ...string) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		n := e.Name()
		if !strings.HasPrefix(n, statePrefix) && !strings.HasPrefix(n, ".current-") {
			continue
		}
		kept := false
		for _, k := range keep {
			kept = kept || (k != "" && n == k)
		}
		if !kept {
			os.RemoveAll(filepath.Join(s.dir, n))
		}
	}
}

// mkdirAll creates dir and its missing parents readable and searchable by
// everyone (NGINX's workers run as another user), whatever the process's
// umask; directories that existed are left as they are.
func mkdirAll(dir string) error {
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return nil
	}
	if parent := filepath.Dir(dir); parent != dir {
		if err := mkdirAll(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return os.Chmod(dir, 0o755)
}
