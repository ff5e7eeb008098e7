package weblogin

import "sync"

// Wakeups hands out wake-ups by poll key to the subscribers of one process: the local half of
// Store.Publish and Store.Subscribe, for Store implementations (MemoryStore wakes through it
// directly; a shared store calls Wake for each message of its own fan-out, such as Redis
// pub/sub). The zero value is ready to use; it is safe for concurrent use.
type Wakeups struct {
	mu   sync.Mutex
	subs map[string]map[chan struct{}]struct{}
}

// Subscribe returns a channel that receives after Wake(pollKey), and the function that ends the
// subscription. A wake-up that finds one waiting is merged with it; none is lost.
func (w *Wakeups) Subscribe(pollKey string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	w.mu.Lock()
	if w.subs == nil {
		w.subs = map[string]map[chan struct{}]struct{}{}
	}
	if w.subs[pollKey] == nil {
		w.subs[pollKey] = map[chan struct{}]struct{}{}
	}
	w.subs[pollKey][ch] = struct{}{}
	w.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			w.mu.Lock()
			defer w.mu.Unlock()
			delete(w.subs[pollKey], ch)
			if len(w.subs[pollKey]) == 0 {
				delete(w.subs, pollKey)
			}
		})
	}
}

// Wake wakes every subscriber of pollKey.
func (w *Wakeups) Wake(pollKey string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for ch := range w.subs[pollKey] {
		select {
		case ch <- struct{}{}:
		default: // a wake-up is already waiting
		}
	}
}
