"""rbdvm operations: storage, domain XML and cluster helpers, with no knowledge of CLI or OCF."""
