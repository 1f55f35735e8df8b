import { describeGradientCases, gradientCaseGroups } from './gradient-cases.test-util';

describeGradientCases('dense gradients', gradientCaseGroups.dense);
