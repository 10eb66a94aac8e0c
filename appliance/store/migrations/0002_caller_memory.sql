-- What an agent remembers about a caller between calls: the summary the dialog extracted at the
-- end of the last call from that number. One row per (agent, number), replaced after each call;
-- an operator can read and delete it (privacy), and the deletion is audited.
CREATE TABLE caller_memory (
    agent_id      TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    caller_number TEXT NOT NULL,
    summary       TEXT NOT NULL,
    updated_at    BIGINT NOT NULL,
    last_call_id  TEXT REFERENCES calls (id) ON DELETE SET NULL,
    PRIMARY KEY (agent_id, caller_number)
);
