"""Scale-out: several collector processes share one province, each partition owned by one."""
