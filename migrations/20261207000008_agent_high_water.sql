-- An agent delivers its results in the order it numbered them, so one number per agent (the
-- highest stored) recognises a batch sent again, for as long as the agent exists: a receipt per
-- result would cost a row per check and expire.
alter table agents add column delivered_seq bigint not null default -1;
