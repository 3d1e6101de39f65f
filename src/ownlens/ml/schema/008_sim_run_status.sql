-- Whether a simulation finished: `simulate` writes its run with completed = 0 when it starts replacing the data and
-- again with completed = 1 when it is done, so a killed run leaves a state `ownlens-ml status` reports as incomplete.
ALTER TABLE sim_runs ADD COLUMN IF NOT EXISTS completed UInt8 DEFAULT 1;
