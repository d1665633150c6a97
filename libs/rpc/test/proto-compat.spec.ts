/**
 * The task-type fields of the gRPC contract on the wire, through the same proto-loader encoding
 * the servers and clients use: old messages (no type, no payload, no outputs) still decode, and
 * outputs survive both a TaskFinished and a TakeOver answer.
 */
import type { MethodDefinition } from '@grpc/grpc-js';
import { services, type TakeOverResponse, type TaskFinishedEvent } from '../src';

type Method = MethodDefinition<unknown, unknown>;

function method(service: 'WorkerTaskService' | 'MasterTaskEventService', name: string): Method {
  return services()[service].service[name] as Method;
}

const finished: TaskFinishedEvent = {
  taskInstanceId: 5,
  workflowInstanceId: 2,
  attempt: 1,
  state: 'SUCCESS',
  exitCode: 0,
  startTimeMs: 1,
  endTimeMs: 2,
  workerAddress: 'w:1',
  epoch: 3,
  message: '',
  outputs: { day: '20240101', empty: '', unicode: 'é ✓' },
};

describe('worker.proto task types', () => {
  it('decodes a Dispatch from a master before task types as type "" and payload ""', () => {
    const dispatch = method('WorkerTaskService', 'Dispatch');
    const bytes = dispatch.requestSerialize({
      task: {
        taskInstanceId: 7,
        workflowInstanceId: 3,
        taskName: 't',
        command: 'true',
        attempt: 1,
        masterAddress: 'm:1',
        epoch: 1,
      },
    });
    const { task } = dispatch.requestDeserialize(bytes) as { task: Record<string, unknown> };
    expect(task).toMatchObject({ command: 'true', taskType: '', payloadJson: '' });
  });

  it('carries the type and the payload of a Dispatch', () => {
    const dispatch = method('WorkerTaskService', 'Dispatch');
    const payloadJson = JSON.stringify({ method: 'GET', url: 'http://h/' });
    const bytes = dispatch.requestSerialize({ task: { taskInstanceId: 7, taskType: 'HTTP', payloadJson } });
    expect((dispatch.requestDeserialize(bytes) as { task: Record<string, unknown> }).task).toMatchObject({
      taskType: 'HTTP',
      payloadJson,
      command: '',
    });
  });

  it('carries outputs in TaskFinished, and decodes an event without them as {}', () => {
    const taskFinished = method('MasterTaskEventService', 'TaskFinished');
    expect(taskFinished.requestDeserialize(taskFinished.requestSerialize(finished))).toEqual(finished);
    const { outputs: _, ...old } = finished;
    expect(taskFinished.requestDeserialize(taskFinished.requestSerialize(old))).toEqual({
      ...old,
      outputs: {},
    });
  });

  it('carries outputs in the result of a TakeOver answered FINISHED', () => {
    const takeOver = method('WorkerTaskService', 'TakeOver');
    const answer: TakeOverResponse = {
      status: 'FINISHED',
      result: finished,
      startTimeMs: 1,
      workerStartTimeMs: 9,
      workerRegistration: 3,
    };
    expect(takeOver.responseDeserialize(takeOver.responseSerialize(answer))).toEqual(answer);
  });

  it('carries the addressed registration in Dispatch and the answering one back; 0 when not given', () => {
    const dispatch = method('WorkerTaskService', 'Dispatch');
    const spec = {
      taskInstanceId: 1,
      workflowInstanceId: 2,
      taskName: 't',
      command: 'true',
      attempt: 1,
      timeoutMs: 0,
      params: {},
      masterAddress: 'm:1',
      epoch: 1,
      taskType: 'SHELL',
      payloadJson: '',
    };
    const request = { task: spec, workerStartTimeMs: 9, workerRegistration: 2 };
    expect(dispatch.requestDeserialize(dispatch.requestSerialize(request))).toEqual(request);
    expect(dispatch.requestDeserialize(dispatch.requestSerialize({ task: spec }))).toMatchObject({
      workerStartTimeMs: 0,
      workerRegistration: 0,
    });
    const answer = {
      accepted: false,
      reason: 'stale registration: x',
      workerStartTimeMs: 9,
      workerRegistration: 3,
    };
    expect(dispatch.responseDeserialize(dispatch.responseSerialize(answer))).toEqual(answer);
  });
});
