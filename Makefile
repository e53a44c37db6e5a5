PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install train test clean

$(STAMP): setup.py constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip wheel setuptools
	$(PY) -m pip install --quiet -c constraints.txt -e '.[atari,memory,control,dev]'
	touch $(STAMP)

install: $(STAMP)

# The default experiment: DQN on CartPole with Reverb, a learner and 2 actors as Ray processes.
train: $(STAMP)
	$(VENV)/bin/repertory train --agent dqn --env gym:CartPole-v1 --launcher ray --num-actors 2 \
	  --max-actor-steps 60000 --seed 0 --run-dir runs/cartpole_dqn --overwrite

test: $(STAMP)
	$(PY) -m pytest tests

clean:
	rm -rf $(VENV) runs
