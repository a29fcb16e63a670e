"""One module per place sessions can live; each implements `store.SessionStore`."""
