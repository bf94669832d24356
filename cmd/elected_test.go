package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	fcache "k8s.io/client-go/tools/cache/testing"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/open-service-mesh/osm-operator/internal/testenv"
)

// The event handlers the reconcilers of a term add to the replica's
// informers go with the term: the next term's reconcilers are the only ones
// its events reach. The informer is client-go's, over a fake source.
func TestATermRemovesItsEventHandlers(t *testing.T) {
	source := fcache.NewFakeControllerSource()
	inf := toolscache.NewSharedIndexInformer(source, &corev1.Pod{}, 0, toolscache.Indexers{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go inf.Run(ctx.Done())
	// Every event reaches this handler, which is no term's.
	var all atomic.Int32
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{AddFunc: func(any) { all.Add(1) }}); err != nil {
		t.Fatal(err)
	}

	term := &termCache{Cache: oneInformer{informer: inf}}
	i, err := term.GetInformer(ctx, &corev1.Pod{})
	if err != nil {
		t.Fatal(err)
	}
	var termSaw atomic.Int32
	for _, add := range []func(toolscache.ResourceEventHandler) (toolscache.ResourceEventHandlerRegistration, error){
		i.AddEventHandler,
		func(h toolscache.ResourceEventHandler) (toolscache.ResourceEventHandlerRegistration, error) {
			return i.AddEventHandlerWithOptions(h, toolscache.HandlerOptions{})
		},
	} {
		if _, err := add(toolscache.ResourceEventHandlerFuncs{AddFunc: func(any) { termSaw.Add(1) }}); err != nil {
			t.Fatal(err)
		}
	}
	// A pod is added, and the informer told every handler of it.
	addPod := func(name string, seen int32) {
		t.Helper()
		source.Add(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"}})
		testenv.Eventually(t, 10*time.Second, func() error {
			if n := all.Load(); n != seen {
				return fmt.Errorf("the informer delivered %d pods, want %d", n, seen)
			}
			return nil
		})
	}
	addPod("during", 1)
	// Handlers are told in turn, not at once.
	testenv.Eventually(t, 10*time.Second, func() error {
		if n := termSaw.Load(); n != 2 {
			return fmt.Errorf("the term's two handlers saw %d events during the term, want 2", n)
		}
		return nil
	})
	if err := term.end(); err != nil {
		t.Fatal(err)
	}
	addPod("after", 2)
	time.Sleep(100 * time.Millisecond)
	if n := termSaw.Load(); n != 2 {
		t.Errorf("the term's handlers saw %d events, want 2: they were not removed when the term ended", n)
	}
}

// oneInformer is a cache with a single informer, whatever is asked for.
type oneInformer struct {
	cache.Cache
	informer cache.Informer
}

func (c oneInformer) GetInformer(context.Context, client.Object, ...cache.InformerGetOption) (cache.Informer, error) {
	return c.informer, nil
}
