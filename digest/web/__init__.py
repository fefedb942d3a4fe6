"""The web app: public pages and the SendGrid webhook, thin edges over the services."""
