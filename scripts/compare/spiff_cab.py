"""The change advisory board on SpiffWorkflow, in memory on one core: start, assessment, three
CAB votes in parallel (all approve), gateway, schedule, end -- the work of the interpreter
benchmark's three-vote run. Prints instances per second and the size of one serialized instance
(JSON). Usage: python spiff_cab.py [seconds]"""

import json
import sys
import time
from pathlib import Path

from SpiffWorkflow.bpmn.parser import BpmnParser
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.util.task import TaskState

parser = BpmnParser()
parser.add_bpmn_file(str(Path(__file__).with_name("cab.bpmn")))
SPEC = parser.get_spec("cab")


def ready(workflow):
    return [t for t in workflow.get_tasks(state=TaskState.READY) if t.task_spec.manual]


def run_one(measure=False):
    workflow = BpmnWorkflow(SPEC)
    for task in workflow.get_tasks(state=TaskState.READY):
        task.data.update({"change": {"id": "CHG0001234", "title": "Upgrade PostgreSQL to 17"},
                          "requester": "rita", "cab_members": ["ann", "ben", "cat"]})
    workflow.do_engine_steps()
    (triage,) = ready(workflow)
    triage.data["risk"] = "high"
    triage.run()
    workflow.do_engine_steps()
    size = 0
    if measure:
        size = len(BpmnWorkflowSerializer().serialize_json(workflow))
    for _ in range(3):
        vote = ready(workflow)[0]
        vote.data["vote"] = "approved"
        vote.run()
        workflow.do_engine_steps()
    assert workflow.is_completed(), [t.task_spec.name for t in ready(workflow)]
    assert workflow.data.get("scheduled"), workflow.data
    return size


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
    size = run_one(measure=True)
    for _ in range(50):
        run_one()
    runs, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        run_one()
        runs += 1
    elapsed = time.perf_counter() - start
    print(json.dumps({"instances_per_second": runs / elapsed, "state_bytes": size}))


if __name__ == "__main__":
    main()
