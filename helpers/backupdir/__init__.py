"""The backup directory on the node's file system (outside the cluster): its layout, atomic writes, listing."""
