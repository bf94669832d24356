package main

import (
	"context"
	"testing"

	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The event handlers the reconcilers of a term add to the replica's
// informers go with the term: the next term's reconcilers are the only ones
// its events reach.
func TestATermRemovesItsEventHandlers(t *testing.T) {
	inf := &handlers{}
	term := &termCache{Cache: oneInformer{informer: inf}}
	i, err := term.GetInformer(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	saw := 0
	if _, err := i.AddEventHandler(toolscache.ResourceEventHandlerFuncs{AddFunc: func(any) { saw++ }}); err != nil {
		t.Fatal(err)
	}
	if _, err := i.AddEventHandlerWithOptions(toolscache.ResourceEventHandlerFuncs{AddFunc: func(any) { saw++ }}, toolscache.HandlerOptions{}); err != nil {
		t.Fatal(err)
	}
	inf.add()
	if saw != 2 {
		t.Fatalf("the term's handlers saw %d events during the term, want 2", saw)
	}
	if err := term.end(); err != nil {
		t.Fatal(err)
	}
	inf.add()
	if saw != 2 || len(inf.registered) != 0 {
		t.Errorf("the term's handlers saw %d events, want 2, and %d are still registered: they were not removed when the term ended", saw, len(inf.registered))
	}
}

// handlers is an informer that only keeps event handlers.
type handlers struct {
	cache.Informer
	registered []*registration
}

type registration struct {
	toolscache.ResourceEventHandlerRegistration
	handler toolscache.ResourceEventHandler
}

func (h *handlers) AddEventHandler(eh toolscache.ResourceEventHandler) (toolscache.ResourceEventHandlerRegistration, error) {
	r := &registration{handler: eh}
	h.registered = append(h.registered, r)
	return r, nil
}

func (h *handlers) AddEventHandlerWithOptions(eh toolscache.ResourceEventHandler, _ toolscache.HandlerOptions) (toolscache.ResourceEventHandlerRegistration, error) {
	return h.AddEventHandler(eh)
}

func (h *handlers) RemoveEventHandler(r toolscache.ResourceEventHandlerRegistration) error {
	for i, have := range h.registered {
		if have == r {
			h.registered = append(h.registered[:i], h.registered[i+1:]...)
			return nil
		}
	}
	return nil
}

// add delivers an add event to every registered handler.
func (h *handlers) add() {
	for _, r := range h.registered {
		r.handler.OnAdd(struct{}{}, false)
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
