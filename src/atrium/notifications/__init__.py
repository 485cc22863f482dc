"""In-app notifications: the inbox of each account, the consumer that fills it from domain
events (honouring the notification preferences), and administrator broadcasts."""
