package accesslog

import (
	"testing"

	"github.com/coalmine-dev/coalmine/internal/spec"
	"github.com/coalmine-dev/coalmine/internal/telemetry"
)

func TestRoutesAndTable(t *testing.T) {
	rs := telemetry.NewRegistry(telemetry.Options{}).Rollout("shop")
	backends := map[string]spec.Role{"shop_stable": spec.RoleStable, "shop_canary": spec.RoleCanary}
	var table Table
	if table.Resolve("shop_stable") != nil {
		t.Error("the zero Table resolved a name")
	}

	// No canary yet: its backend is not attributed.
	m := Routes(rs, backends, map[spec.Role]string{spec.RoleStable: "v1"})
	table.Set(m)
	if v := table.Resolve("shop_stable"); v == nil || v.Version() != "v1" || v.Role() != spec.RoleStable {
		t.Errorf("shop_stable → %v, want stable v1", v)
	}
	if v := table.Resolve("shop_canary"); v != nil {
		t.Errorf("shop_canary → %v with no canary, want nil", v.Version())
	}
	m["other"] = nil // Set copied: later changes to m are not seen
	delete(m, "shop_stable")
	if table.Resolve("shop_stable") == nil {
		t.Error("changing the map after Set changed the table")
	}

	// After a promotion the stable backend serves v2.
	table.Set(Routes(rs, backends, map[spec.Role]string{spec.RoleStable: "v2"}))
	if v := table.Resolve("shop_stable"); v == nil || v.Version() != "v2" {
		t.Errorf("after the promotion shop_stable → %v, want v2", v)
	}
}

func TestResolverFunc(t *testing.T) {
	v := telemetry.NewRegistry(telemetry.Options{}).Rollout("shop").Version(spec.RoleStable, "v1")
	var r Resolver = ResolverFunc(func(name string) *telemetry.VersionStats {
		if name == "b" {
			return v
		}
		return nil
	})
	if r.Resolve("b") != v || r.Resolve("c") != nil {
		t.Error("ResolverFunc does not call its function")
	}
}
