import { describeGradientCases, gradientCaseGroups } from './gradient-cases.test-util';

describeGradientCases('resize gradients', gradientCaseGroups.resize);
