package client_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/api"
	"github.com/coalmine-dev/coalmine/internal/api/apitest"
	"github.com/coalmine-dev/coalmine/internal/client"
)

func TestListReplicas(t *testing.T) {
	at := func() time.Time { return apitest.Epoch }
	fake := apitest.NewFake(at, apitest.Fixtures()...)
	srv := httptest.NewServer(api.New(api.Config{Commands: fake, Replicas: apitest.ReplicasAt(at)}))
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL, "")
	ctx := context.Background()

	got, err := c.ListReplicas(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := apitest.Replicas(at()); !reflect.DeepEqual(got, want) {
		t.Errorf("ListReplicas =\n%+v\nwant\n%+v", got, want)
	}
	raw, err := c.ListReplicasRaw(ctx)
	if err != nil || !strings.HasPrefix(string(raw), `[{"id":"serve-a","leader":false,"admin":"http://10.0.0.11:7070"`) {
		t.Errorf("ListReplicasRaw = %s, %v", raw, err)
	}
}

func TestListReplicasOfAnOlderServer(t *testing.T) {
	srv, _ := newServer(t, "") // no Config.Replicas: the route is unknown
	_, err := newClient(t, srv.URL, "").ListReplicas(context.Background())
	if !errors.Is(err, client.ErrNotFound) {
		t.Errorf("err = %v, want ErrNotFound", err)
	}
}
