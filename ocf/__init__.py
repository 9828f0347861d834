"""The Pacemaker resource agent ocf:rbdvm:VirtualDomain (see docs/agent.md)."""
