"""Alert channels: each sends one Notification to one person, or raises ChannelError."""
