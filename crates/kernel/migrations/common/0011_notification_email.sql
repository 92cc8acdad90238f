-- Where a person wants notifications by email (issue 4), sealed like other contact data.
ALTER TABLE accounts ADD COLUMN notification_email_enc TEXT;
