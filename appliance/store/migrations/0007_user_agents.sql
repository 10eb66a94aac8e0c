-- The agents a user of the lowest role (`agent`) works for: such a user sees only those agents,
-- their knowledge and their calls. Kept by agent name, since agents come from the configuration
-- and may be defined after the user is; higher roles see every agent and have no rows here.
CREATE TABLE user_agents (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    agent_name TEXT NOT NULL,
    PRIMARY KEY (user_id, agent_name)
);
