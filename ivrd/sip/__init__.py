"""Sans-IO SIP: messages, transactions, dialogs, SDP and the user-agent core."""
